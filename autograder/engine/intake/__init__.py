"""Reading a submission before any of it runs: staging its files, reading notebooks, the static scan."""
