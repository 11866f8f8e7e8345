"""SQL of the notifications schema (tables unqualified: the pool's search_path is the schema)."""
