"""CDS Hooks 2.0 services: an EHR asks for an encounter's codes at discharge or at coding review.

* :mod:`service.cds.services`: the two services (discovery entries, prefetch templates), the
  request and feedback bodies, and the way from a hook call to a coded note.
* :mod:`service.cds.cards`: the cards (the code set, each diagnosis an action creating its
  Condition; physician queries; a link to the workbench review screen where there is one).
* :mod:`service.cds.store`: the cards sent, and feedback on them recorded in the coders'
  feedback store (:mod:`service.feedback`).

Authentication is the EHR's signed JWT (:mod:`service.jwt_auth`); the routes are
:mod:`service.routes.cds_hooks`. docs/cds-hooks.md has complete examples.
"""
