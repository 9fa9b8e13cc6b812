/*
 * cli/kms_client.h - the client commands of sbx kms (cli/kms_client.c):
 * status, key, datakey, encrypt, decrypt, rewrap, token, policy, cert.
 */
#ifndef SBX_CLI_KMS_CLIENT_H
#define SBX_CLI_KMS_CLIENT_H

/**
 * Run `sbx kms SUBCOMMAND ...`: argv[0] is the subcommand ("key"), argv[1]
 * the verb for a group ("list"). @return CLI_OK, CLI_FAIL or CLI_USAGE.
 */
int kms_client_main(int argc, char **argv);

#endif
