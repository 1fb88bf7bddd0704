"""Siaga 112: the backend of a 112 emergency call center beside an Asterisk PBX."""
