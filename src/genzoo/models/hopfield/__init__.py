"""Associative memories of the Hopfield family: the binary Hopfield network (Hebbian and
Storkey storage), the continuous graded-response network, and the modern dense associative
memory / Hopfield layer.

Modules register their models on import; :mod:`genzoo.core.registry` imports them all."""
