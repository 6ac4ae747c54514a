"""What the web areas (public, contact, api, staff) share: request helpers, JSON
serializers and form pieces. An area imports the domain and this package, never another
area (tests/test_layout.py checks it)."""
