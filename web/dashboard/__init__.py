"""The staff and organization dashboard under /staff: server-rendered pages, no JS framework."""
