"""Every journey lives in its own package here; core/registry.py installs them."""
