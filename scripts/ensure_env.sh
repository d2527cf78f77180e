# Sourced by scripts/test.sh and scripts/run.sh: set up ./.venv (scripts/setup.sh) when it is
# missing or was set up from other requirements than today's (see scripts/setup_stamp.sh).
if ! cmp -s <(bash scripts/setup_stamp.sh) .venv/intenttuner-setup.stamp 2>/dev/null; then
  bash scripts/setup.sh
fi
