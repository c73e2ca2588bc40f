"""The Kubernetes backend: manifests (pure), event classification (pure), a shared watch.

Only :mod:`spawner.kube.backend` and :mod:`spawner.kube.watch` import the ``kubernetes``
client, which takes seconds to import; manifests and classification are plain dicts.
"""
