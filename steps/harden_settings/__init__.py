"""What the `harden` step writes, per package manager: the settings, the file edits that write
them, and the questions put to the real package manager (does it know the setting; did it take)."""
