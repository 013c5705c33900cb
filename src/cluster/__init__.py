"""Launching on clusters (msrun nodes, HCCL rank tables) and ModelArts jobs."""
