"""Many machines: the playbook run through Ansible, every journal collected, one fleet view."""
