"""Throwaway and external infrastructure: servers, providers, ports, privilege."""
