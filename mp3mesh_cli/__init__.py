"""`mp3mesh`: a command-line client that talks only to the public REST API."""
