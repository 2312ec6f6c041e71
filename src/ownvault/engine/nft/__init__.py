"""NFT preservation: collecting a token's files, storing and re-verifying them."""
