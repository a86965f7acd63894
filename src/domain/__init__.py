"""Pure domain logic: no Flask, Connexion, Peewee or I/O."""
