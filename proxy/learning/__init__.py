"""The feedback (learning) path: feedback becomes lessons, lessons are indexed for recall, and
each lesson's effect is measured against its control arm."""
