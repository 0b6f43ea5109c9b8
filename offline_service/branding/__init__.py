"""Branding: each account's portal name, accent colour, logo and custom domain."""
