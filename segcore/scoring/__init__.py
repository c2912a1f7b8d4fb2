"""Scores: truth in any usual form, instance matching, Dice/IoU/DSB scores, decoding search."""
