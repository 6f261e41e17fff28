"""The soak and chaos suite (`make soak`, issue 15): a fresh cluster through Envoy, a long
load, then processes killed and frozen, model versions swapped, messages and streams flooded
under load, judged against budgets. Not part of `make test`.

  stack      the cluster it starts (make cluster's code path) and direct probes of it
  processes  who is who under the stack (/proc) and their resident memory
  load       the load process and the arithmetic over its call records
  events     the chaos events, each timed with its recovery
  floods     the oversized-message and stream floods
  report     budgets, the one table, results files
"""
