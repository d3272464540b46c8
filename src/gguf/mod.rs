//! GGUF v2/v3 reader (bounds-checked, zero-copy) and writer (explicit states, atomic).
