"""Adapters that drive the kafka_sansio core over real sockets.

Installed as ``kafka_sansio.transports``; importing ``kafka_sansio`` never
imports this package.
"""
