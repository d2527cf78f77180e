"""Training images in, training set out: loading a folder of user images (`image_folder`), and
the kohya-layout training set on disk with its ``dataset.json`` manifest (`training_set`,
`kohya`). Folder choice and naming rules shared by both live in `folders` and `naming`."""
