"""The football simulator and GRF's scenarios on it."""
