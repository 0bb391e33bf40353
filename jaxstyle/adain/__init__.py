"""Arbitrary style transfer (AdaIN, Huang & Belongie 2017): training, inference, the CLI."""
