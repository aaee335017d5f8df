//! The feature pipeline: raw records to dense vectors, identical in training and serving.
