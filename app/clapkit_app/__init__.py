"""clapkit's Panel dashboards."""
