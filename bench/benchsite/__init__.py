"""The benchmark's Django project: one settings module for the three libraries, chosen by environment."""
