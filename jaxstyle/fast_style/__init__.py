"""Fast (feed-forward) style transfer: Johnson et al. 2016 nets trained with the NST losses."""
