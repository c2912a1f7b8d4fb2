"""The inference engine: model input by the card, runner, pre/post-processing, tiles, instance decoding, pictures."""
