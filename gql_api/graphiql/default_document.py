"""What GraphiQL's editor shows to someone who has nothing saved yet: how to sign in, and the
dashboard query to run once signed in.

A Python string rather than a .graphql file, so that it ships with the package as code does;
tests/graphiql/test_page.py validates it against the schema the app serves.
"""

DEFAULT_DOCUMENT = """\
# Integration API (연동 관리) · GraphiQL
#
# The dashboard below: who you are, your merchant
# (고객사), and each store with its PG channels (채널)
# and webhook settings (결제알림). It needs a session:
#
# 1. Sign up in a new tab (+), with no header:
#
#      mutation {
#        merchantSignUp(input: {
#          merchantName: "Acme Shop", name: "Kim Owner",
#          email: "owner@acme.example",
#          password: "a long passphrase"}) {
#          session { token }
#          userErrors { field code message }
#        }
#      }
#
#    or log in: sessionCreate(input: {email: "…",
#    password: "…"}), with the same selection.
#
# 2. Put its token in the Headers pane below:
#
#      {"Authorization": "Bearer pos_…"}
#
#    Headers are never saved in this browser: after a
#    reload, paste the token again.
#
# 3. Run the query: Ctrl-Enter, or the ▶ button.
#
# With no header, this lists the PG catalog:
#
#      { pgProviders { provider displayName } }
#
# Docs: the book icon, top left. Ctrl-Space completes.

query Dashboard {
  viewer {
    role
    user {
      name
      email
    }
  }
  merchant {
    name
    stores(first: 20) {
      totalCount
      nodes {
        storeId
        name
        isRepresentative
        channels(first: 20) {
          totalCount
          nodes {
            name
            pgProvider
            mode
            pgMerchantId
          }
        }
        webhookSettings {
          moduleVersion
          mode
          url
          usesRepresentativeSetting
        }
      }
    }
  }
}
"""
