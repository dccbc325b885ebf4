"""Exercise mode: a tabletop drill of a real playbook, live, in a simulated world."""
