"""The reference node: HTTP API, block production behind a pluggable interface
(:class:`lazyledger.node.producer.BlockProducer`), follower sync without execution, and the
accountant service with Merkle proofs.

``lazyledger node run`` starts one; :mod:`lazyledger.client` talks to it. Nothing heavy is
imported here, so the ``lazyledger`` command works without the ``node`` extra installed."""
