"""Tests for the course: lesson files and the course CLI."""
