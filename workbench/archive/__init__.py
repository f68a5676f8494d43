"""Project archives: one-file, verifiable hand-over of a project's history between stores."""
