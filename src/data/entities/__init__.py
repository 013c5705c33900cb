"""LUKE's entity side of the data: the entity vocabulary, the mention database and linking."""
