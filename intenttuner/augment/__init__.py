"""Intent-guided data augmentation: crops of kept and (small) modified concepts, and removal of
deleted concepts by inpainting. See `types` for the data that flows between the stages."""
