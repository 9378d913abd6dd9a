"""Neural style transfer (Gatys et al.) as a plain library.

Importing the package is cheap: torch is imported only by the modules that
need it (weights, vgg, losses, transfer), so the API can use `params` and
`image` without torch installed.
"""
