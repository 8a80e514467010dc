"""PostgreSQL: binaries, throwaway servers, client tools, SQL."""
