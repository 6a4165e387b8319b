"""The merchant (고객사), its representative store (대표 상점) and sub-stores (하위 상점)."""
