"""Order communication: signed ServiceRequests routed to SENAITE (lab) and the PACS worklist
(imaging), queued durably in the store's database, with status flowing back (issue 5)."""
