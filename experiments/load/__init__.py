"""The serving load study: many HTTP, SSE and WebSocket clients against a real server; reports/serving/."""
