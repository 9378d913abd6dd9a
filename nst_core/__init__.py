"""Neural style transfer (Gatys et al.) as a plain library.

Importing the package is cheap: torch is imported only by the modules that
need it (weights, vgg, losses, transfer), so the API can use `params` and
`image` without torch installed.
"""

from nst_core.cpu import quiet_openmp_between_ops

quiet_openmp_between_ops()
