"""The job store's roles: one object per kind of caller, each over the one jobs table, with
only the methods that caller needs. Each role is its own module, and this package imports
none of them, so a function that imports its role imports no other (the import contracts in
pyproject.toml check it):

- api.py, ``ApiJobs``: the API (submit, a user's jobs, cancel, a schedule's runs, health);
- run.py, ``RunJobs``: a run (the consumer and a task: claim, fenced writes, dispatch);
- sweep.py, ``SweepJobs``: the sweeper and the dead-letter function;
- schedules.py, ``ScheduleJobs``: the consumer's overlap policy for a schedule's fires;
- groups.py, ``GroupJobs``: a fanned-out job's groups.

They share the table's connection (table.py: ``Table.over`` makes one role over another's
client and events). There is no object with every method: each caller is given its role.
"""
