"""The coordinators' review application (``nbs serve``)."""
