"""Who may do what: keys and their scopes, the principal a request acts as, and the short-lived
tokens that let a browser give feedback on one answer."""
