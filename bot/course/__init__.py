"""The course: lesson files with exercises, their validation, and (later) submissions and reviews."""
