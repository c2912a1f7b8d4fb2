"""Reading and writing files: images, microscopy, labels, GeoJSON, tables."""
