"""Pure torch and Pillow: the techniques a workshop teaches. No discord, no database."""
