"""Process management for `make run` and `make test`: embedded services and the supervisor."""
