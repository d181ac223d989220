"""The partials study: what a realtime partial costs and how close its fixed text comes to the final, per window
margin (serving.realtime.window_margin_s)."""
