"""One module per dataset, each registering itself in :data:`snnx.data.registry.DATASETS`.

A module declares its :class:`~snnx.data.info.DatasetInfo`, its parameters and checks, where its
files lie, and its builder. No module here imports torch, torchvision or numpy at module level:
the registry imports all of them to compose a config, which must not wait for torch.
"""
