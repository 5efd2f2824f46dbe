"""The mdf journey: its manifest (manifest.py) lists every part."""
