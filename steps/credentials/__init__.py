"""Credentials a machine held: discovery, rotation (AWS, npm), the keyring, a checklist."""
